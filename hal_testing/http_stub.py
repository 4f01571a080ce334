"""A worker's "dev server" for the ports tests, and a fetch from the host.

The minimal worker image has no python3, but Debian's essential perl (`perl-base`, with
IO::Socket::INET): a few lines of it answer every request on 0.0.0.0:PORT with a marker.
"""

from __future__ import annotations

import urllib.error
import urllib.request

# argv: port, marker. HTTP/1.0, one request per connection, the marker as the body.
PERL_SERVER = r"""
use IO::Socket::INET;
my ($port, $mark) = @ARGV;
my $s = IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => $port, Listen => 16,
                              ReuseAddr => 1, Proto => "tcp") or die "listen: $!";
while (my $c = $s->accept) {
    while (defined(my $l = <$c>)) { last if $l eq "\r\n" || $l eq "\n"; }
    print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
        . length($mark) . "\r\nConnection: close\r\n\r\n$mark";
    close $c;
}
"""


def serve_argv(port: int, mark: str) -> list[str]:
    """`docker exec -d WORKER` these: the server, as the worker's own user."""
    return ["perl", "-e", PERL_SERVER, str(port), mark]


def fetch(url: str, timeout: float = 3.0) -> str | None:
    """The body `url` answers with, from this host, never through a proxy; None when the
    connection is refused, reset or closed without an answer."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return str(r.read().decode(errors="replace"))
    except (OSError, urllib.error.URLError, ValueError):
        return None
