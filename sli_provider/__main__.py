from sli_provider.cli import main

raise SystemExit(main())
