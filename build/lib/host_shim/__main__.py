from host_shim.commands.quick import main

main()
