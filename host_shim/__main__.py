from host_shim.cli import main

main()
