from fleuve.cli import main

main()
