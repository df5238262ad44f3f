"""The ``peforge numerics`` subcommand (the report is the ``numerics`` study)."""

__all__ = ["add_parser", "run"]


def add_parser(commands) -> None:
    numerics = commands.add_parser(
        "numerics", help="run a text encoder (all-MiniLM-L6-v2 or an ONNX file) with its GEMMs "
        "on a PE family's golden arithmetic and compare it with float32")
    numerics.add_argument("--arith", action="append", required=True, metavar="SPEC",
                          help="family[:key=value[+key=value...]] or fp32, e.g. "
                          "systolic:pe=lmul+format=e4m3, bitserial:wtypes=fp4, sparse-dsp:nm=2:4 "
                          "(repeatable)")
    numerics.add_argument("--gemms", default=None, metavar="SET",
                          help="all, attention, projections, ffn, weights or a comma list of "
                          "qkv,out,ffn_up,ffn_down,scores,context (an ONNX model: all, weights, "
                          "attention; default: all; weights for weight-quantising families)")
    numerics.add_argument("--sentences", type=int, default=None, metavar="N",
                          help="the first N (3..24) of the 24 shipped sentences (default all)")
    numerics.add_argument("--model", default=None, metavar="PATH",
                          help="an ONNX text encoder (.onnx, tokenizer.json beside it; GEMM "
                          "sets all, weights, attention) or a sentence-transformers BERT folder "
                          "(default: the packaged all-MiniLM-L6-v2)")


def run(args) -> int:
    """Check every ``--arith`` first, then measure them in turn, each a row of the table as it
    ends (a progress line on stderr at each start and end, :func:`~peforge.sim.cli.common.stage`:
    a measurement runs the encoder over the sentences, tens of seconds)."""
    from peforge.sim.cli.common import stage
    from peforge.sim.numerics.encoder import load_model
    from peforge.sim.numerics.study import checked, default_gemms, measure, sentences

    runs = [(spec, args.gemms or default_gemms(spec)) for spec in args.arith]
    model = load_model(args.model)
    for spec, gemms in runs:                 # every spec checked before anything runs
        checked(spec, gemms, args.sentences, model)
    count = args.sentences or len(sentences())
    print(f"{'arith':<34} {'gemms':<11} {'bits/w':>6} {'cos mean':>9} {'cos worst':>9} "
          f"{'spearman':>8} {'gemm err':>8} {'w rel mse':>9}", flush=True)
    for number, (spec, gemms) in enumerate(runs, 1):
        with stage(f"numerics {number}/{len(runs)} {spec} ({gemms} GEMMs): running the "
                   f"encoder on {count} sentences"):
            m = measure(spec, gemms, args.sentences, model)
        mse = "" if m.weight_rel_mse is None else f"{m.weight_rel_mse:9.2e}"
        print(f"{m.arith:<34} {m.gemms:<11} {m.bits_per_weight:6.2f} {m.cosine_mean:9.5f} "
              f"{m.cosine_worst:9.5f} {m.spearman:8.4f} {m.gemm_rel_error:8.4f} {mse:>9}",
              flush=True)
    return 0
