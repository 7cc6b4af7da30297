from mlp_serve.cli import main

raise SystemExit(main())
