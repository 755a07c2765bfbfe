import TailDraft
print("taildraft")
