from mlp_train.cli import main

raise SystemExit(main())
