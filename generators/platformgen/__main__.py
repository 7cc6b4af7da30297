from platformgen.cli import main

raise SystemExit(main())
