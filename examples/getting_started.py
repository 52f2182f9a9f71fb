"""Getting started: the tutorial pipeline, end to end.

The tutorial's code is the module ``megatron_keras.demo`` (read it there); this script runs
it, as does the command ``megatron demo`` (which megatron-keras adds).
"""

from megatron_keras.demo import main

if __name__ == "__main__":
    main()
