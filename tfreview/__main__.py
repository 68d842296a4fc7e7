from tfreview.launch import main

main()
