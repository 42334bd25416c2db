// spm.cc: the C interface of spm.h over SentencePiece's C++ API. Each entry
// point catches every exception (a bad allocation included) and turns it,
// like SentencePiece's own error statuses, into TX_EINPUT and a message.
extern "C" {
#include "../core/base.h"
}
#include "spm.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct tx_spm {
    sentencepiece::SentencePieceProcessor proc;
};

namespace {

// Sentences from memory, for the trainer.
class Sentences : public sentencepiece::SentenceIterator {
  public:
    Sentences(const char *const *s, size_t n) : s_(s), n_(n) { load(); }
    bool done() const override { return i_ >= n_; }
    void Next() override {
        i_++;
        load();
    }
    const std::string &value() const override { return cur_; }
    sentencepiece::util::Status status() const override { return {}; }

  private:
    void load() {
        if (i_ < n_) cur_ = s_[i_];
    }
    const char *const *s_;
    size_t n_, i_ = 0;
    std::string cur_;
};

// SentencePiece's statuses read "Internal: FILE(LINE) [CONDITION] REASON":
// the reason is what a user can act on.
int fail(tx_err *err, const char *what, const std::string &why) {
    size_t at = why.rfind("] ");
    std::string reason = at == std::string::npos ? why : why.substr(at + 2);
    if (reason.empty()) reason = "the bytes do not parse as one (protobuf)";
    return tx_error(err, TX_EINPUT, "%s: %s", what, reason.c_str());
}

} // namespace

extern "C" int tx_spm_train(const char *const *sentences, size_t n, int vocab_size, int type,
                            unsigned seed, char **model, size_t *len, tx_err *err) {
    *model = nullptr;
    *len = 0;
    try {
        // Our special ids; the text as it is (identity normalization, no
        // added or removed spaces); one thread, so the model is the same
        // bytes whatever the machine; quiet.
        const std::unordered_map<std::string, std::string> args = {
            {"model_type", type == TX_SPM_BPE ? "bpe" : "unigram"},
            {"vocab_size", std::to_string(vocab_size)},
            {"pad_id", "0"}, {"bos_id", "1"}, {"eos_id", "2"}, {"unk_id", "3"},
            {"pad_piece", "<pad>"}, {"bos_piece", "<bos>"}, {"eos_piece", "<eos>"},
            {"unk_piece", "<unk>"},
            {"normalization_rule_name", "identity"}, {"add_dummy_prefix", "false"},
            {"remove_extra_whitespaces", "false"}, {"character_coverage", "1.0"},
            {"num_threads", "1"}, {"minloglevel", "2"}};
        sentencepiece::SetRandomGeneratorSeed(seed);
        Sentences it(sentences, n);
        std::string bytes;
        auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &bytes);
        if (!st.ok()) return fail(err, "SentencePiece training", st.ToString());
        *model = static_cast<char *>(tx_malloc(bytes.size() ? bytes.size() : 1));
        memcpy(*model, bytes.data(), bytes.size());
        *len = bytes.size();
        return TX_OK;
    } catch (const std::exception &e) {
        return fail(err, "SentencePiece training", e.what());
    } catch (...) {
        return fail(err, "SentencePiece training", "an unknown C++ exception");
    }
}

extern "C" int tx_spm_load(tx_spm **s, const char *model, size_t len, tx_err *err) {
    *s = nullptr;
    try {
        std::unique_ptr<tx_spm> p(new tx_spm);
        auto st = p->proc.LoadFromSerializedProto(absl::string_view(model, len));
        if (!st.ok() || p->proc.GetPieceSize() < 1)
            return fail(err, "not a SentencePiece model", st.ok() ? "no pieces" : st.ToString());
        *s = p.release();
        return TX_OK;
    } catch (const std::exception &e) {
        return fail(err, "not a SentencePiece model", e.what());
    } catch (...) {
        return fail(err, "not a SentencePiece model", "an unknown C++ exception");
    }
}

extern "C" void tx_spm_free(tx_spm *s) { delete s; }

extern "C" int tx_spm_size(const tx_spm *s) { return s->proc.GetPieceSize(); }

extern "C" const char *tx_spm_piece(const tx_spm *s, int id) {
    return s->proc.IdToPiece(id).c_str();
}

extern "C" int tx_spm_is_special(const tx_spm *s, int id) {
    return s->proc.IsControl(id) || s->proc.IsUnknown(id);
}

extern "C" void tx_spm_specials(const tx_spm *s, int *unk, int *bos, int *eos, int *pad) {
    *unk = s->proc.unk_id(), *bos = s->proc.bos_id(), *eos = s->proc.eos_id(),
    *pad = s->proc.pad_id();
}

extern "C" int tx_spm_encode(const tx_spm *s, const char *text, size_t n, int *ids, int cap) {
    std::vector<int> v;
    try {
        if (!s->proc.Encode(absl::string_view(text, n), &v).ok()) v.clear();
    } catch (...) {
        v.clear(); // only allocation can throw here; an unencodable text is no text
    }
    for (size_t i = 0; i < v.size() && i < (size_t)cap; i++) ids[i] = v[i];
    return (int)v.size();
}

extern "C" size_t tx_spm_decode(const tx_spm *s, const int *ids, int n, char *out, size_t cap) {
    std::string text;
    try {
        if (!s->proc.Decode(std::vector<int>(ids, ids + n), &text).ok()) text.clear();
    } catch (...) {
        text.clear();
    }
    if (cap) {
        size_t k = text.size() < cap - 1 ? text.size() : cap - 1;
        while (k < text.size() && k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80)
            k--; // back to the start of the code point that did not fit
        memcpy(out, text.data(), k);
        out[k] = 0;
    }
    return text.size();
}
