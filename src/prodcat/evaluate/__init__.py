"""How good a model is, and why it answers what it does: metrics of predictions (:mod:`.metrics`),
cross-validation of a config (:mod:`.cv`, ``prodcat cv``), the labelled products a bundle is scored on
(:mod:`.labelled`, ``prodcat evaluate``), robustness to perturbed inputs (:mod:`.robustness`, ``prodcat
robustness``), explanations by occlusion (:mod:`.explain`, ``prodcat explain``) and the HTML reports
(:mod:`.report`). The ``*_parser`` modules are the commands' parsers, apart so the command line stays quick."""
