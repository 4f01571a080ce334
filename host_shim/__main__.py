from host_shim.commands.cli import main

main()
