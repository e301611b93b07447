from feedgate.cli import main

raise SystemExit(main())
