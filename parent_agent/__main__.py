from parent_agent.commands.cli import main

main(prog_name="hal-agent")
