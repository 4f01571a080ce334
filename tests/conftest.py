"""The fixtures are the harness's (hal_testing.pytest_plugin), which the benchmark shares."""

pytest_plugins = ["hal_testing.pytest_plugin"]
