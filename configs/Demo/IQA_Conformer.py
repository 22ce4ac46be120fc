"""Demo: IQA Conformer on a synthetic PIPAL tree, on a CPU, in about a minute and a half.

`python main.py -c configs/Demo/IQA_Conformer.py --mode pipeline` writes the synthetic tree
(8 training references, 4 test references) if it is absent, trains 6 short epochs, averages
epochs 4-6, evaluates on the 2 held-out references and writes an NTIRE submission.
Without cached ImageNet weights the trunk is random with calibrated BatchNorm statistics (logged).
"""

from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig

config = Config(
    name="Demo_IQA_Conformer",
    model=ModelConfig(architecture="IQA_Conformer", backbone_weights="auto", calibration_images=64),
    data=DataConfig(
        dataset="PIPAL",
        root="datasets/PIPAL_synthetic",
        test_labels="datasets/PIPAL_synthetic_test_labels.txt",
        val_fraction=0.25,
        synthetic=True,
        synthetic_refs=8,
    ),
    optimizer=OptimizerConfig(lr=1e-3),
    epochs=6,
    batch_size=8,
    num_workers=0,
    eval_period=6,
    callback_path="callbacks/Demo/IQA_Conformer/",
    generation_path="callbacks/Demo/IQA_Conformer/generation/",
    swa_epochs=(4, 6),
    description="IQA Conformer demo on synthetic data (random calibrated trunk)",
)
