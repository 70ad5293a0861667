from calibkit._entry import main

main()
