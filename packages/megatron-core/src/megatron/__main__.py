from megatron.cli import main

raise SystemExit(main())
