"""The experiment's answer as text: aligned lines for a terminal, Markdown for the KFP UI,
and the one-line account of a generator's metrics that run summaries share."""

from __future__ import annotations

from genaug.columns import aligned

HEADER = ("classifier", "fraction", "ratio", "seeds", "accuracy (mean ± std)", "macro F1", "bal. acc.",
          "Δ vs real (paired)", "95% CI", "between generators", "")


def _cells(row: dict) -> tuple[str, ...]:
    acc = f"{row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f}"
    spread = ""
    if "delta_mean" not in row:
        delta, ci, mark = "(baseline)", "", ""
    else:
        delta = f"{row['delta_mean']:+.4f}"
        ci = "n/a (1 seed)" if row["delta_low"] is None else f"[{row['delta_low']:+.4f}, {row['delta_high']:+.4f}]"
        mark = {True: "*", False: "", None: ""}[row["significant"]]
        if row.get("generator_spread") is not None:  # the sample std of the generators' own effects
            spread = f"±{row['generator_spread']:.4f} ({row['n_generators']} seeds)"
        elif "interval_over" in row:
            spread = "1 generator"
    means = tuple("n/a" if row.get(m) is None else f"{row[m]:.4f}" for m in ("macro_f1_mean", "balanced_accuracy_mean"))
    return (row["classifier"], f"{row['fraction']:g}", f"{row['ratio']:g}", str(row["n_seeds"]), acc, *means, delta, ci,
            spread, mark)


INTERVAL_NOTE = ("95% CI: a t-interval over generator seeds of each generator's mean paired Δ when the "
                 "experiment trained 2 or more generators (both sources of variance), else over classifier "
                 "seeds (that one generator's); '*' when it excludes 0")


def text(rows: list[dict]) -> str:
    """Aligned columns; '*' marks a difference whose 95% interval excludes 0."""
    return "\n".join(aligned(HEADER, [_cells(r) for r in rows]))


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER[:-1]) + " | sig. |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def generator_line(result: dict) -> str:
    """One line for tables: FID per mode, KID, precision/recall, IS, the mean MS-SSIM of
    same-class pairs (generated/real; lower is more diverse) and the Likeness Score, with their basis."""
    def num(v, f=".2f"):
        return "n/a" if v is None else format(v, f)

    fids = ", ".join(f"FID[{m}] {num(v)}" for m, v in result["fid"].items())
    return (f"{fids}, KID {num(result.get('kid'), '.4f')}, precision {num(result.get('precision'), '.3f')}, "
            f"recall {num(result.get('recall'), '.3f')}, IS {num(result.get('inception_score'))}, "
            f"MS-SSIM {num(result.get('msssim_generated'), '.3f')}/{num(result.get('msssim_real'), '.3f')} (gen/real), "
            f"LS {num(result.get('likeness_score'), '.3f')} "
            f"(N={result['n_generated']} vs {result['n_reference']} train, "
            f"{(result['network'] or {}).get('name', 'no network: ' + str(result.get('reason')))})")
