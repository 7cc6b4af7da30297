from mlp_drift.cli import main

raise SystemExit(main())
