"""The parametrized KFP v2 pipeline: real data -> generator -> synthetic data ->
classifiers on real and on real+synthetic -> evaluation -> ONNX -> summary.

    validate_params
          |
    prepare_data ------------------------------+
          |                                    |
    train_generator -> synthesize --+          |
          |                         v          v
          |            train_classifier(augmented)   train_classifier(real)
          |                         \\         /
          |                          evaluate
          +------------------> export_onnx --> report
"""

from kfp import dsl
from kfp.dsl import Artifact

from components import steps
from genaug.params import RunParams

DEFAULTS = RunParams()


@dsl.pipeline(
    name="genaug",
    description="Does adding generator samples to the training set improve the classifier? "
                "Trains a class-conditional generator, synthesizes ratio * n_real labelled images, "
                "trains the classifier on real and on real+synthetic data, and compares test accuracy.",
)
def genaug_pipeline(
    dataset: str = DEFAULTS.dataset,
    generator: str = DEFAULTS.generator,
    classifier: str = DEFAULTS.classifier,
    profile: str = DEFAULTS.profile,
    seed: int = DEFAULTS.seed,
    ratio: float = DEFAULTS.ratio,
) -> Artifact:
    checked = steps.validate_params(dataset=dataset, generator=generator, classifier=classifier,
                                    profile=profile, seed=seed, ratio=ratio).set_display_name("validate parameters")
    data = steps.prepare_data(dataset=dataset, profile=profile).after(checked)
    data.set_display_name("prepare data")
    gen = steps.train_generator(data=data.outputs["data"], generator=generator, profile=profile, seed=seed)
    gen.set_display_name("train generator")
    synth = steps.synthesize(model=gen.outputs["model"], data=data.outputs["data"], ratio=ratio, seed=seed)
    clf_real = steps.train_classifier(data=data.outputs["data"], classifier=classifier, profile=profile,
                                      seed=seed, ratio=ratio).set_display_name("classifier on real data")
    clf_aug = steps.train_classifier(data=data.outputs["data"], synthetic=synth.outputs["synthetic"],
                                     classifier=classifier, profile=profile, seed=seed,
                                     ratio=ratio).set_display_name("classifier on real + synthetic")
    ev = steps.evaluate(data=data.outputs["data"], classifier_real=clf_real.outputs["model"],
                        classifier_augmented=clf_aug.outputs["model"], synthetic=synth.outputs["synthetic"])
    onnx = steps.export_onnx(generator=gen.outputs["model"], classifier_real=clf_real.outputs["model"],
                             classifier_augmented=clf_aug.outputs["model"]).set_display_name("export ONNX")
    summary = steps.report(
        params=checked.outputs["params"], data=data.outputs["data"], generator=gen.outputs["model"],
        synthetic=synth.outputs["synthetic"], classifier_real=clf_real.outputs["model"],
        classifier_augmented=clf_aug.outputs["model"], evaluation=ev.outputs["report"],
        generator_onnx=onnx.outputs["generator_onnx"], classifier_onnx=onnx.outputs["classifier_onnx"])
    return summary.outputs["summary"]
