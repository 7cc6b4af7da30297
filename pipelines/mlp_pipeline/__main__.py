from mlp_pipeline.cli import main

raise SystemExit(main())
