"""Getting started: the tutorial pipeline, end to end.

The tutorial's code is the module ``megatron.demo`` (read it there); this script runs it, as
does the command ``megatron demo``.
"""

from megatron.demo import main

if __name__ == "__main__":
    main()
