vllm serve zai-org/AutoGLM-Phone-9B \
  --served-model-name autoglm-9b \
  --max-model-len 25480 \
  --limit-mm-per-prompt '{"image":10}'
