"""Train one cell.

python reproduce/train.py algorithm=grpo pipo=on            # tiny scale, this machine
python reproduce/train.py pipo=off seed=21 pipo.lam=0.5     # any Hydra override
python reproduce/train.py --help                            # config groups and options
"""

import hydra
from omegaconf import DictConfig

from pipo.config import register_schemas
from pipo.run import run_cell

register_schemas()


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_cell(cfg)


if __name__ == "__main__":
    main()
