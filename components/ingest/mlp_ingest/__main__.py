from mlp_ingest.cli import main

raise SystemExit(main())
