from lipnet_ko.app.cli import main

raise SystemExit(main())
