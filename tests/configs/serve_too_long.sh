vllm serve zai-org/AutoGLM-Phone-9B \
  --served-model-name autoglm-phone-9b \
  --max-model-len 131072 \
  --limit-mm-per-prompt '{"image":10}'
