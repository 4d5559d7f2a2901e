from ai2human.app.cli import main

raise SystemExit(main())
