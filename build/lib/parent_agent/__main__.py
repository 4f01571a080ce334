from parent_agent.commands.cli import main

main()
