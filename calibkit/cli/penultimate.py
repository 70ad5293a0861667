"""`calibkit penultimate`: the penultimate-layer projection of Müller et al. (2019), §2."""

from pathlib import Path
from typing import Annotated, Any

import typer

from calibkit.cli._common import LabelsKey, parse_named, reports_errors, stdout, wrote
from calibkit.cli.app import app

#: The help of `calibkit penultimate --help`; its first paragraph is the summary in
#: `calibkit --help` (calibkit/_commands.py lists it, tests/cli/test_fast_help.py checks).
HELP = (
    "Project penultimate-layer activations onto the plane of three class templates (Müller et "
    "al. 2019): cluster spread, centre distances, tightness."
)


@app.command("penultimate", help=HELP)
@reports_errors
def penultimate_command(
    models: Annotated[
        list[str],
        typer.Argument(
            metavar="NAME=LAYER",
            help="Features, final-layer weight and bias, labels (and logits) as NAME=PATH "
            "(or PATH, named by its stem); test split.",
        ),
    ],
    train: Annotated[
        list[str] | None,
        typer.Option(
            "--train",
            metavar="<NAME=LAYER>",
            help="The same model's training split (a second row).",
        ),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(
            "--classes",
            metavar="<A,B,C>",
            help="Three classes, by index or name (default: the three most frequent labels).",
        ),
    ] = None,
    class_names: Annotated[
        Path | None,
        typer.Option("--class-names", help="Class names, one per line."),
    ] = None,
    per_class: Annotated[
        int, typer.Option("--per-class", min=1, help="Examples drawn per class (all if fewer).")
    ] = 100,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the draw.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Figure file: .png, .svg or .pdf.")
    ] = None,
    own_axes: Annotated[
        bool,
        typer.Option(
            "--own-axes",
            help="Axes of its own for each model, shared by its train and test panels "
            "(default: the same axes for all panels).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    features_key: Annotated[
        str | None,
        typer.Option("--features-key", help="Key/column (parquet: or column prefix) of features."),
    ] = None,
    weight_key: Annotated[
        str | None, typer.Option("--weight-key", help="Key of the final layer's weight (K, D).")
    ] = None,
    bias_key: Annotated[
        str | None, typer.Option("--bias-key", help="Key of the final layer's bias (K,).")
    ] = None,
    logits_key: Annotated[
        str | None, typer.Option("--logits-key", help="Key/column holding logits.")
    ] = None,
    labels_key: LabelsKey = None,
    logits_precision: Annotated[
        str,
        typer.Option(
            "--logits-precision",
            metavar="<auto|float32|tf32|float16|bfloat16|float64>",
            help="Arithmetic the stored logits were computed in, which sets the tolerance of "
            "their check (auto: the least precise stored dtype; tf32/float16/bfloat16: GPU "
            "TF32 matmuls or autocast).",
        ),
    ] = "auto",
    weights: Annotated[
        list[str] | None,
        typer.Option(
            "--weights",
            metavar="<[NAME=]FILE>",
            help="Take weight and bias from this file (e.g. a .pt state dict); a bare FILE "
            "with one model is that model's.",
        ),
    ] = None,
) -> None:
    import numpy as np

    from calibkit.diagnostics.classes import select_classes
    from calibkit.diagnostics.penultimate import (
        affine_plane,
        project,
        require_examples,
        sample_indices,
        templates,
    )
    from calibkit.errors import InputError, UsageError
    from calibkit.io.atomic import check_output_path
    from calibkit.loaders.class_names import read_class_names
    from calibkit.loaders.layer import LayerKeys, read_layer
    from calibkit.report.penultimate import penultimate_doc, penultimate_table
    from calibkit.report.summary_json import dumps

    named = parse_named(models)
    named_train = _named("--train", train or [])
    model_names = [n for n, _ in named]
    unknown = [n for n, _ in named_train if n not in model_names]
    if unknown:
        raise UsageError(f"--train names {unknown[0]!r}, which is not one of the models")
    weight_files: dict[str, str] = {}
    if weights:
        if len(named) == 1 and len(weights) == 1 and "=" not in weights[0]:
            weight_files = {model_names[0]: weights[0]}
        else:
            weight_files = dict(_named("--weights", weights))
            stray = [n for n in weight_files if n not in model_names]
            if stray:
                raise UsageError(f"--weights names {stray[0]!r}, which is not one of the models")
    inputs = [p for _, p in named] + [p for _, p in named_train] + list(weight_files.values())
    if class_names is not None:
        inputs.append(str(class_names))
    if out is not None:
        from calibkit.plotting.save import check_figure_path

        check_output_path(check_figure_path(out), inputs)
    keys = LayerKeys(
        features=features_key, weight=weight_key, bias=bias_key, logits=logits_key,
        labels=labels_key,
    )  # fmt: skip
    test_layers = {
        name: read_layer(
            path, keys, weights_path=weight_files.get(name), logits_precision=logits_precision
        )
        for name, path in named
    }
    train_layers = {
        name: read_layer(
            path, keys, weights_path=weight_files.get(name), logits_precision=logits_precision
        )
        for name, path in named_train
    }
    first = test_layers[model_names[0]]
    k = first.n_classes
    for layer in [*test_layers.values(), *train_layers.values()]:
        if layer.n_classes != k:
            raise InputError(
                layer.weights_source,
                f"has K = {layer.n_classes} classes; {first.weights_source} has {k}",
            )
    for name, layer in train_layers.items():
        test = test_layers[name]
        if not (
            np.array_equal(layer.weight, test.weight) and np.array_equal(layer.bias, test.bias)
        ):
            raise InputError(
                layer.weights_source,
                f"its final layer differs from that of {name}'s test file {test.weights_source}: "
                "--train must be the same model",
            )
    names: tuple[str, ...]
    if class_names is not None:
        names = read_class_names(class_names, k)
    else:
        found = next((ly.class_names for ly in test_layers.values() if ly.class_names), None)
        names = found if found is not None else tuple(str(i) for i in range(k))
    chosen = select_classes(
        classes,
        count=3,
        n_classes=k,
        names=names,
        frequencies=np.bincount(first.labels, minlength=k).tolist(),
    )
    results: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, str]] = {}
    train_paths = dict(named_train)
    for name, path in named:
        layer = test_layers[name]
        t = templates(layer.weight, layer.bias)
        plane = affine_plane(t, chosen, unit=layer.weight_unit, source=layer.weights_source)
        splits = {"train": train_layers[name]} if name in train_layers else {}
        splits["test"] = layer
        results[name], sources[name] = {}, {}
        for split, ly in splits.items():
            # a class without examples: its cluster and the tightness would be undefined
            require_examples(
                ly.labels, chosen, source=ly.source, names=names,
                split="--train" if split == "train" else None,
            )  # fmt: skip
            rows = sample_indices(ly.labels, chosen, per_class, seed)
            available = [int(np.count_nonzero(ly.labels == c)) for c in chosen]
            results[name][split] = project(plane, t, ly.features, rows, available=available)
            sources[name][split] = train_paths[name] if split == "train" else path
    chosen_names = [names[c] for c in chosen]
    if out is not None:
        from calibkit.plotting.penultimate import plot_penultimate
        from calibkit.plotting.save import save_figure

        fig = plot_penultimate(results, class_names=chosen_names, shared=not own_axes)
        save_figure(fig, out, inputs=inputs)
        wrote(out)
    if as_json:
        doc = penultimate_doc(
            results, classes=chosen, class_names=chosen_names, per_class=per_class, seed=seed,
            sources=sources,
        )  # fmt: skip
        typer.echo(dumps(doc), nl=False)
    else:
        stdout().print(penultimate_table(results, class_names=chosen_names))


def _named(option: str, specs: list[str]) -> list[tuple[str, str]]:
    """:func:`parse_named` of an option's values; its errors name the option."""
    from calibkit.errors import UsageError

    try:
        return parse_named(specs)
    except UsageError as e:
        raise UsageError(f"{option}: {e}") from None
