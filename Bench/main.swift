import TailDraft
print("taildraft-bench")
