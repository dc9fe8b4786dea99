#!/usr/bin/env bash
# The GPU figures in RESULTS.md: train_speed.py on a machine with one NVIDIA GPU,
# jax and PyTorch (CUDA builds) but no TensorFlow, so keras-seq's Keras models are
# fed the same windows as arrays instead of through tf.data.
#
#   bash benchmarks/device_check.sh OUT_DIR [variants]
#
# Keras and its two pure-Python needs it may lack (namex, optree) can be put in
# .whl/ as wheels; they are installed into /tmp/site first. Priority order: the
# default path against PyTorch cuDNN at both shapes, then the layer variants.
set -u
out=${1:-${OUT:-/tmp/device-check}}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
KERAS_BACKEND=jax python3 -c "import jax, keras, torch; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__, 'torch', torch.__version__)" 2>&1 | tail -1 | tee -a "$out/gpu.txt"

# keras-seq's SimpleRNN and LSTM against Keras's on this GPU (the scan unrolled by 8 here; cuDNN for LSTM).
KERAS_BACKEND=jax python3 - <<'CHECK' 2>&1 | tail -1 | tee -a "$out/gpu.txt"
import keras, numpy as np
from keras_seq.models.recurrent import LSTM, SimpleRNN
x = np.random.default_rng(0).normal(size=(5, 21, 3)).astype("float32")
worst = 0.0
for ours, theirs in ((SimpleRNN, keras.layers.SimpleRNN), (LSTM, keras.layers.LSTM)):
    for wrap in (lambda layer: layer, keras.layers.Bidirectional):
        a, b = wrap(theirs(8, return_sequences=True)), wrap(ours(8, return_sequences=True))
        expected = np.asarray(a(x)); b(x); b.set_weights(a.get_weights())
        worst = max(worst, float(np.abs(np.asarray(b(x)) - expected).max()))
print(f"keras-seq layers vs Keras layers on {keras.backend.backend()}: max abs difference {worst:.2e}")
CHECK

# The LSTM's hand-written gradient on this GPU: weights after 3 Adam steps against Keras's LSTM.
KERAS_BACKEND=jax python3 - <<'CHECK' 2>&1 | tail -1 | tee -a "$out/gpu.txt"
import keras, numpy as np
from keras_seq.models.recurrent import LSTM
rng = np.random.default_rng(1)
x, y = rng.normal(size=(32, 21, 3)).astype("float32"), rng.normal(size=(32, 21, 1)).astype("float32")
weights = []
for kind in (keras.layers.LSTM, LSTM):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((21, 3)), kind(16, return_sequences=True), kind(16, return_sequences=True),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    weights.append(model.get_weights())
worst = max(float(np.abs(a - b).max()) for a, b in zip(*weights))
print(f"2-layer LSTM after 4 Adam steps, keras-seq vs Keras on {keras.backend.backend()}: max abs weight difference {worst:.2e}")
CHECK

bench() {  # name, time limit in seconds, then train_speed.py arguments
    local name=$1; shift
    echo "=== $name: $*"
    local limit=$1; shift
    timeout "$limit" python3 benchmarks/train_speed.py --backends jax --no-fit-memory --worker-timeout 100 \
        --repeats 1 --json "$out/$name.json" "$@" 2>&1 | tee "$out/$name.txt"
}
bench tutorial 120 --epochs 4
bench large 160 --large --epochs 3
# With a second argument "variants": keras-seq's choices one at a time, against the defaults.
#   keras-loop: Keras's train function (the GPU default since the looped one lost at the large job);
#   jax-gradient: jax differentiates the LSTM scan instead of the hand-written gradient.
if [ "${2:-}" = variants ]; then
    bench tutorial-variants 90 --epochs 4 --archs drnn,lstm --variants keras-loop,jax-gradient --no-reference
    bench large-variants 120 --large --epochs 3 --archs drnn,lstm --variants keras-loop,jax-gradient --no-reference
fi
