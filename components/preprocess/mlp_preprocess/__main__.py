from mlp_preprocess.cli import main

raise SystemExit(main())
