from simmim.cli import main

main()
