from parent_agent.commands.quick import main

main()
