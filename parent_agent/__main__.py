from parent_agent.cli import main

main()
