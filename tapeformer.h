/* tapeformer.h: the whole public API in one include, as installed:
 * #include <tapeformer/tapeformer.h>, then link with
 * `pkg-config --cflags --libs tapeformer`. docs/api.md describes every
 * function; TX_VERSION and TX_VERSION_NUMBER (core/base.h) name the version. */
#ifndef TAPEFORMER_H
#define TAPEFORMER_H

#include "core/base.h"
#include "core/tensor.h"
#include "core/tape.h"
#include "core/ops.h"
#include "core/gemm.h"
#include "core/gradcheck.h"
#include "layers/layers.h"
#include "layers/model.h"
#include "optim/optim.h"
#include "data/spm.h"
#include "data/data.h"
#include "io/safetensors.h"
#include "io/config.h"
#include "io/checkpoint.h"
#include "io/model_io.h"
#include "decode/decode.h"
#include "draw/image.h"
#include "draw/plot.h"
#include "draw/attention.h"
#include "dist/dist.h"
#include "train/train.h"

#endif
