from rightfocus.cli import main

raise SystemExit(main())
