import sys

from mlp_preprocess import spark_pod
from mlp_preprocess.cli import main

if sys.argv[1:2] and sys.argv[1] in spark_pod.ROLES:  # a SparkApplication's driver or executor
    spark_pod.run(sys.argv[1], sys.argv[2:])
raise SystemExit(main())
