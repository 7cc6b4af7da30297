from mlp_evaluate.cli import main

raise SystemExit(main())
