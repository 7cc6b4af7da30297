"""Train step: TensorFlow/Keras classifier with a tf.data pipeline and a scikit-learn baseline."""
