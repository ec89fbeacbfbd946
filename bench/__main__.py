from bench.cli.commands import main

main()
