from ai2human.app.page import main

raise SystemExit(main())
