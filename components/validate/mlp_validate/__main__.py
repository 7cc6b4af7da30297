from mlp_validate.cli import main

raise SystemExit(main())
