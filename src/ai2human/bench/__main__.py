from ai2human.bench.cli import main

raise SystemExit(main())
