"""The framework-free half of the pipelines: everything a task does on numpy arrays and tokens.

    registry                the task names, aliases and the model class each loads (HEAD_CLASSES)
    task                    Task, the base of every task: parameters, input shapes, small numeric helpers
    encode                  text -> word pieces -> [CLS] a [SEP] (b [SEP]) rows, truncation, windows
    sentence_tasks          fill-mask, text-classification, next-sentence-prediction, feature-extraction
    token_classification    token-classification (ner): pieces -> words -> entities
    question_answering      question-answering: windows, span scores, answers in characters
    driver                  PipelineBase: inputs in, padded batches through the model, results out

mobilebert_pt.pipelines and mobilebert_tf.pipelines add the few framework calls a pipeline makes.
"""
