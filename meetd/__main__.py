from meetd.cli import main

main()
