from tfreview.cli import main

main()
