"""Train one cell, or an ad-hoc grid of cells with -m.

python reproduce/train.py algorithm=grpo pipo=on            # tiny scale, this machine
python reproduce/train.py pipo=off seed=21 pipo.lam=0.5     # any Hydra override
python reproduce/train.py -m algorithm=grpo,dapo pipo.lam=0,0.1,1 pipo.window=4,8
python reproduce/train.py --help                            # config groups and options
python reproduce/train.py scale=paper backend=verl algorithm=dapo --verl-config   # the verl config it would run
"""

import os
import sys

import _checkout  # noqa: F401  (this checkout's pipo before any installed one)
import hydra
from omegaconf import DictConfig

from pipo.config import register_schemas
from pipo.run import run_cell

register_schemas()


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_cell(cfg)


if __name__ == "__main__":
    if "--verl-config" in sys.argv:  # print the complete verl config of the cell, run nothing
        from pipo.backends.verl.config import main as print_verl_config

        sys.exit(print_verl_config([a for a in sys.argv[1:] if a != "--verl-config"]))
    if {"-m", "--multirun"} & set(sys.argv):
        from pipo.submitit_log import quiet_sacct_warnings

        quiet_sacct_warnings()  # a SLURM cluster without accounting: one sacct warning per sweep, not per poll
        if not os.environ.get("PIPO_VALIDATED"):
            from pipo.sweeps import validate_multirun

            if validate_multirun(sys.argv[1:]):  # every cell is checked before Hydra launches any
                sys.exit(1)
    main()
