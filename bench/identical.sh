#!/bin/bash
# Benchmark helper (not a test): the runs behind "bit-identical before and after" (issue 33). Run it once per
# checkout, alone, on one machine, and compare the two OUT folders' CSVs, genotypes and checkpoints:
#   bash bench/identical.sh CHECKOUT DATA OUT
# a 3-epoch paper_a search at 96 x 96 (seed 3), a 3-epoch dccnn-3 retrain and a 2-epoch retrain of the searched
# genotype, all on the CPU with the venv's python (PYTHON overrides it).
set -euo pipefail
CHECKOUT=$1 DATA=$2 OUT=$3
PYTHON=${PYTHON:-python}
rm -rf "$OUT"
mkdir -p "$OUT"
run() { (cd "$CHECKOUT" && PYTHONPATH="$CHECKOUT" "$PYTHON" -m nas_recon.cli.main "$@"); }
run search --data "$DATA" --out "$OUT/search" --space paper_a --epochs 3 --crop 48 --size 96 --batch-size 4 \
    --max-slices 6 --seed 3 --device cpu > "$OUT/search.txt" 2>&1
run retrain --model dccnn-3 --data "$DATA" --out "$OUT/retrain" --recipe quick --epochs 3 --max-slices 6 --crop 48 \
    --size 96 --seed 3 --device cpu > "$OUT/retrain.txt" 2>&1
run retrain --genotype "$OUT/search/genotype.json" --data "$DATA" --out "$OUT/retrain-g" --recipe quick --epochs 2 \
    --max-slices 6 --crop 48 --size 96 --seed 3 --device cpu > "$OUT/retrain-g.txt" 2>&1
echo "wrote $OUT"
