from mlp_register.cli import main

raise SystemExit(main())
